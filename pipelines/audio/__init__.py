"""Sound of a sequence: the soundtrack (soundtrack), the per-frame audio features expressions
read (features), and the drum pattern the project synthesises (synth)."""

"""Where a render's frames come from: the input image or clip (inputs) and how it is fitted to
the render's size (fit)."""

"""The studio's page (Gradio), in the order an artist works: an input (photo, video, song or
none), a preset and its keys as a form made from the key table (each field's meaning and what it
allows under it; a bad value is refused with the CLI's one line and nothing starts), the queue
with each render's progress and honest ETA (the CLI's progress bar, read from its process) and
the frame being dreamed, Cancel and Resume, and the finished renders with their sidecar, the
YAML that reproduces them from the command line, and "open these settings again".

Offline: Gradio 6 serves its own scripts and fonts; the theme asks for system fonts only and
analytics are off. The page binds to 127.0.0.1 unless asked otherwise, with no share link, and
only the studio's folder is served."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from pipelines.config import presets
from pipelines.studio import form, uploads
from pipelines.studio.jobs import Job, Queue
from render.errors import UserError

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
HEADERS = ["render", "preset", "status", "progress", "eta", "message"]
TICK = 0.5  # s between looks at the queue (a finished render shows within this)
FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]
MONO = ["ui-monospace", "Consolas", "monospace"]


def _values(preset: str, overrides: list[str] | None = None) -> dict[str, str]:
    """The form's values for `preset`, with `overrides` (key=value) applied as typed."""
    values = form.values(preset)
    for text in overrides or []:
        key, _, value = text.partition("=")
        if key in values:
            values[key] = "" if value == "null" else value
    return values


def build(queue: Queue) -> Any:
    """The page (a gr.Blocks) over `queue`."""
    import gradio as gr

    names = presets.available()
    first = "still" if "still" in names else names[0]
    kind = {n: form.pipeline_of(n) for n in names}  # each preset's pipeline, read once
    pipelines = sorted(set(kind.values()))
    fields = form.keys_for(pipelines)
    with gr.Blocks(title="dreamreel studio", analytics_enabled=False) as page:
        gr.Markdown("# dreamreel studio\nDeepDream stills, zooms, videos and music videos. "
                    "Pick an input and a preset, change any key, render; renders run one at "
                    "a time and keep going when this tab closes.")
        with gr.Row():
            upload = gr.File(label="Input: a photo, a video or a song (none: the generated "
                             "image)", type="filepath", elem_id="upload")
            with gr.Column():
                preset = gr.Dropdown(names, value=first, label="Preset", elem_id="preset")
                about = gr.Markdown(presets.describe(first), elem_id="about")
        boxes: dict[str, dict[str, Any]] = {}
        groups: dict[str, Any] = {}
        start = _values(first)
        for pipe in pipelines:
            with gr.Accordion(f"Keys of the {pipe} pipeline", open=False,
                              visible=pipe == kind[first]) as group:
                boxes[pipe] = {
                    f.key: gr.Textbox(label=f.key, info=f"{f.help} — {f.allowed}",
                                      value=start.get(f.key, "") if pipe == kind[first]
                                      else "", max_lines=1,
                                      elem_id=f"key-{pipe}-{f.key.replace('.', '-')}")
                    for f in fields[pipe]}
            groups[pipe] = group
        with gr.Accordion("What each layer of the model sees (for model.layers)", open=False):
            layers_image = gr.Image(label="The layer gallery of the model in the form (the "
                                    "layers preset: one tile per layer, shallow to deep)",
                                    type="filepath", interactive=False, elem_id="layers")
            layers_render = gr.Button("Render this model's layer gallery with the form's dream "
                                      "settings", elem_id="layers-render")
        with gr.Accordion("Schedules per frame (zoom presets: drawn again when a schedule "
                          "field is left)", open=True):
            plotted = gr.Image(label="Every scheduled value per frame (the --preview plot)",
                               type="filepath", interactive=False, elem_id="plot")
        message = gr.Markdown(elem_id="message")
        with gr.Row():
            render = gr.Button("Render", variant="primary", elem_id="render")
            draft = gr.Button("Preview (zoom, video: the camera path and a plot, in seconds)",
                              elem_id="preview")
        gr.Markdown("## Queue")
        table = gr.Dataframe(headers=HEADERS, value=[], interactive=False, elem_id="queue")
        live = gr.Image(label="Now dreaming: a still's last finished octave, a sequence's last "
                        "frame", type="filepath",
                        interactive=False, elem_id="live")
        with gr.Row():
            picked = gr.Dropdown([], label="Render", elem_id="picked", allow_custom_value=True)
            cancel = gr.Button("Cancel", elem_id="cancel")
            resume = gr.Button("Resume", elem_id="resume")
            reopen = gr.Button("Open these settings again", elem_id="reopen")
        gr.Markdown("## Gallery")
        gallery = gr.Gallery(label="Finished renders", elem_id="gallery", columns=4)
        with gr.Row():
            video = gr.Video(label="The picked render", interactive=False, elem_id="video")
            sidecar = gr.JSON(label="What was rendered and how (the sidecar)", elem_id="sidecar")
        downloads = gr.File(label="Downloads: the output, its sidecar and the YAML that "
                            "renders it from the command line", file_count="multiple",
                            interactive=False, elem_id="downloads")

        flat = [box for pipe in pipelines for box in boxes[pipe].values()]

        def filled(name: str, overrides: list[str] | None = None) -> list[Any]:
            """`name`'s description, its pipeline's keys shown (the others hidden) and
            filled with its values (with `overrides` applied)."""
            values = _values(name, overrides)
            updates: list[Any] = [presets.describe(name)]
            updates += [gr.update(visible=p == kind[name]) for p in pipelines]
            updates += [gr.update(value=values.get(key, "")) if p == kind[name] else gr.update()
                        for p in pipelines for key in boxes[p]]
            return updates

        chosen = preset.change(filled, preset, [about, *groups.values(), *flat])

        def edited_of(name: str, texts: tuple[str, ...]) -> dict[str, str]:
            """The fields of `name`'s pipeline, from the values of every field."""
            pipe = kind[name]
            keys = [key for p in pipelines for key in boxes[p]]
            pipes = [p for p in pipelines for _ in boxes[p]]
            return {k: t for k, t, p in zip(keys, texts, pipes, strict=True) if p == pipe}

        gallery_keys = ("model.name", "model.weights", "dream.steps", "dream.octaves",
                        "dream.step_size", "dream.octave_scale")

        def render_layers(name: str, *texts: str) -> list[Any]:
            edited = edited_of(name, texts)
            base = form.values("layers")
            mine = {k: edited[k] for k in gallery_keys if k in edited and k in base}
            try:
                job = queue.submit("layers", form.overrides("layers", {**base, **mine}), {})
            except UserError as exc:
                return [f"**Not started:** `{exc}`", gr.update()]
            return [f"Queued the layer gallery of {job.model}: `{job.id}`.",
                    gr.update(choices=[job.id], value=job.id)]

        infos = [f"{f.help} — {f.allowed}" for p in pipelines for f in fields[p]]
        keyed = [(p, f.key) for p in pipelines for f in fields[p]]

        def beside(name: str, error: str | None) -> list[Any]:
            """Each field's help, and the refusal beside the field it names (the command
            line's `command line: KEY=value: ...`)."""
            pipe = kind[name]
            found = re.match(r"command line: ([\w.]+)=", error or "")
            bad = found[1] if found else None
            return [gr.update(info=f"⚠ {error}" if (p, k) == (pipe, bad) else info)
                    for (p, k), info in zip(keyed, infos, strict=True)]

        def submit(name: str, upload_path: str | None, preview: bool,
                   *texts: str) -> list[Any]:
            """Queue the render: [the message, the picked render, each field's help] — a
            refusal is shown under the form and beside the field it names."""
            edited = edited_of(name, texts)
            try:
                files: dict[str, Path] = {}
                if upload_path:
                    path = Path(upload_path)
                    stored, kind = uploads.store(path, path.name, queue.root / "uploads")
                    files["audio.file" if kind == "audio" else "input"] = stored
                job = queue.submit(name, form.overrides(name, edited), files, preview)
            except UserError as exc:
                return [f"**Not started:** `{exc}`", gr.update(), *beside(name, str(exc))]
            what = "preview (the camera path and the plot of its schedules)" if preview \
                else "render"
            return [f"Queued {what} `{job.id}`.", gr.update(choices=[job.id], value=job.id),
                    *beside(name, None)]

        def draw(name: str, *texts: str) -> list[Any]:
            pipe = kind[name]
            if pipe != "zoom":
                return [gr.update(), gr.update()]
            try:
                png = form.plot(name, edited_of(name, texts))
            except UserError as exc:
                return [gr.update(), f"**Plot:** `{exc}`"]
            path = queue.root / "plots" / f"{hashlib.sha256(png).hexdigest()[:16]}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png)
            return [str(path), ""]

        for pipe in pipelines:
            for f in fields[pipe]:
                if f.scheduled:  # drawn again when the field is left or Enter is pressed
                    box = boxes[pipe][f.key]
                    gr.on([box.blur, box.submit], draw, [preset, *flat], [plotted, message])
        chosen.then(draw, [preset, *flat], [plotted, message])  # once its fields are filled

        layers_render.click(render_layers, [preset, *flat], [message, picked])
        render.click(lambda *a: submit(a[0], a[1], False, *a[2:]), [preset, upload, *flat],
                     [message, picked, *flat])
        draft.click(lambda *a: submit(a[0], a[1], True, *a[2:]), [preset, upload, *flat],
                    [message, picked, *flat])

        # the picked render and its status: when it changes, its panels are shown (once, so
        # that a playing video is not reloaded every second)
        shown = gr.Textbox(visible=False, elem_id="shown")

        models = [boxes[p]["model.name"] for p in pipelines]

        def refresh(current: str | None, name: str, *model_names: str) -> list[Any]:
            jobs = queue.jobs()
            model = model_names[pipelines.index(kind[name])].strip()
            layers = queue.layer_gallery(model, jobs)
            rows = [[queue.describe(j)[h] for h in HEADERS] for j in jobs]
            running = next((j for j in jobs if j.status == "running"), None)
            frame = queue.latest_frame(running) if running else None
            finished = [(str(p), f"{j.preset} {j.id}") for j in jobs if j.status == "done"
                        for p in j.results() if p.suffix in (".png", ".gif", ".mp4")]
            ids = [j.id for j in jobs]
            pick = current if current in ids else (ids[0] if ids else None)
            job = next((j for j in jobs if j.id == pick), None)
            return [rows, str(frame) if frame else None, finished,
                    gr.update(choices=ids, value=pick), f"{pick}:{job.status if job else ''}",
                    str(layers) if layers else None]

        def show(job_id: str | None) -> list[Any]:
            try:
                return _picked(queue.get(job_id) if job_id else None)
            except UserError:
                return [None, None, None]

        def _picked(job: Job | None) -> list[Any]:
            if job is None or job.status != "done" or not job.results():
                return [None, None, None]
            out = job.results()[0]
            side = out.with_name(out.name + ".json")
            record = json.loads(side.read_text()) if side.is_file() else None
            files = [str(p) for p in (*job.results(), side, job.yaml_path) if p.is_file()]
            return [str(out) if out.suffix == ".mp4" else None, record, files]

        panels = [table, live, gallery, picked, shown, layers_image]
        gr.Timer(TICK).tick(refresh, [picked, preset, *models], panels)
        shown.change(show, picked, [video, sidecar, downloads])

        def act(action: str, job_id: str | None) -> str:
            if not job_id:
                return "Pick a render first."
            try:
                (queue.cancel if action == "cancel" else queue.resume)(job_id)
            except UserError as exc:
                return f"`{exc}`"
            return (f"Cancelling `{job_id}`: its finished frames are kept; Resume goes on "
                    "from them." if action == "cancel" else f"Resuming `{job_id}`.")

        cancel.click(lambda j: act("cancel", j), picked, message)
        resume.click(lambda j: act("resume", j), picked, message)

        def again(job_id: str | None) -> list[Any]:
            if not job_id:
                return [gr.update()] * (2 + len(pipelines) + len(flat))
            job = queue.get(job_id)
            return [gr.update(value=job.preset), *filled(job.preset, job.overrides)]

        reopen.click(again, picked, [preset, about, *groups.values(), *flat])
        page.load(refresh, [picked, preset, *models], panels)
    return page


def serve(root: Path, host: str = "127.0.0.1", port: int = 7860, block: bool = True) -> Any:
    """Start the studio over the jobs in `root`; returns the running page (block=False)."""
    import gradio as gr

    root = root.resolve()
    queue = Queue(root)
    page = build(queue)
    theme = gr.themes.Default(font=FONTS, font_mono=MONO)
    page.launch(server_name=host, server_port=port, share=False, inbrowser=False,
                prevent_thread_lock=not block, allowed_paths=[str(root)], theme=theme,
                quiet=True, show_error=False)
    return page

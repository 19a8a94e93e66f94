"""dreamreel studio: the tool in a local web page (Gradio). `form` turns the key table into
form fields and back, `uploads` checks what a browser sends, `jobs` is the render queue, `app`
the page. Only `app` imports Gradio; nothing here imports TensorFlow (renders run in their own
process, the CLI's)."""

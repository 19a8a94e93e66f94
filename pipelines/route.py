"""Which code renders a preset: the pipeline itself (here, one process), a batch (several
inputs, or one still/zoom as a task on the cluster: pipelines.batch), or one video chunked on
the cluster (pipelines.cluster.video). The CLI asks here before every render. The cluster
package (and Ray) is imported only for a preset whose cluster.address is not none."""

from __future__ import annotations

from collections.abc import Callable

from pipelines import batch
from pipelines.batch import Run, batch_inputs
from pipelines.config.presets import Preset
from render.errors import ConfigError


def route(preset: Preset, runner: Callable[[str], Run]) -> Run:
    """What renders `preset`: a batch (several inputs here, or on the cluster as tasks; one
    still or zoom as a task on the cluster), one video chunked on the cluster, or the
    pipeline itself."""
    settings = preset.settings
    try:
        files = batch_inputs(settings)
    except ConfigError as exc:
        raise preset.refuse(exc) from None
    if settings.cluster.enabled and (files is not None or settings.pipeline in ("still", "zoom")):
        from pipelines.cluster import batch as tasks

        return tasks.run
    if files is not None:
        return batch.run
    if settings.cluster.enabled and settings.pipeline == "video":
        from pipelines.cluster import video

        return video.run
    return runner(settings.pipeline)

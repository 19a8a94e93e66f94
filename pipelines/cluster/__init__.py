"""Rendering on a Ray cluster (issue 18): connecting (connect), cutting a video into chunks at
scene cuts (chunks, cuts), the actor that dreams chunks (worker), the driver that hands them
out and cross-fades them back into one sequence (driver), and the inputs of a batch as Ray
tasks (batch; batches without a cluster are pipelines.batch). The scheduler, source window,
first-frame plan and colour matching are the single-process ones (pipelines.sequence,
pipelines.source, pipelines.warp). This package is imported only once a preset asked for a
cluster, and Ray only inside its functions."""

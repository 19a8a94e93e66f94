"""Rendering on a Ray cluster (issue 18): connecting (connect), cutting a video into chunks at
scene cuts (chunks, cuts), the actor that dreams chunks (worker), the driver that hands them
out and cross-fades them back into one sequence (driver), and batches of inputs (batch).
Ray is imported only inside these modules' functions, once a preset asked for a cluster."""

"""costbench's cost model: hardware, model and price catalogs, FLOPs, memory, time and cost.

Torch-free by design: `costbench cost` must answer in well under a second and this package must
be importable (and testable) without torch or the bench package.
"""

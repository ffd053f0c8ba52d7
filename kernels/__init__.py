"""What costbench times: matmul (kernels.matmul) and all-reduce (kernels.allreduce). Imports torch."""

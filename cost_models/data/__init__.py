"""CSV catalogs (GPUs, models, networks, prices); every row carries its source and as_of date."""

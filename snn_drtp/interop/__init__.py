"""Networks in and out of the project: NIR graphs (``nir_graph``)."""

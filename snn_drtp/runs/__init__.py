"""Training runs: the configuration (``config``), an engine built from it (``build``), the training
loop with its resumable run folders (``training``) and the plots it writes (``plots``)."""

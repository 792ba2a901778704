"""contrastkit-tabular: contrastive pretraining on tables (an example contrastkit plugin).

An item is one row: a ``numpy.float32`` vector of F numeric features; a batch
is a ``torch.float32`` tensor ``B × F``.  The hook implementations live in
:mod:`contrastkit_tabular.plugin`, the entry point of the distribution.
"""

__version__ = "0.1.0"

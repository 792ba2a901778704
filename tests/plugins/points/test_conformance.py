"""The points plugin passes contrastkit's conformance kit, component by component."""

from contrastkit.core.testkit import conformance_tests

# Crops, dropout and patch masking keep N (they refill freed slots with kept points), so every view keeps
# its shape.  'normalize' declares itself deterministic: the kit checks that repeated calls agree.
test_conformance = conformance_tests("points")

from setuptools import setup

# Beam stages the package for Dataflow workers with `--setup_file ./setup.py` (python setup.py
# sdist); every setting lives in pyproject.toml.
setup()

from setuptools import setup

setup(name="sympy-dev", version="1.14.2", packages=["sympy_dev"])

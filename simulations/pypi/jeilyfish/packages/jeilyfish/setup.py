from setuptools import setup

setup(name="jeilyfish", version="0.7.1", packages=["jeilyfish"])

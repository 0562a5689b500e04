"""Stands in for get-pip.py, which ansible-test downloads from ci-files.testing.ansible.com to put
pip into each virtual environment it makes, where that host cannot be reached (this lab's
network reaches PyPI only). Same command line: pip options and the packages to install, plus
get-pip's own --no-setuptools / --no-wheel. Installs the interpreter's bundled pip (ensurepip),
then the packages asked for, from PyPI."""

import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet",
                       *(arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY)])

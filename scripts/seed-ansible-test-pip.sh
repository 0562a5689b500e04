#!/usr/bin/env bash
# ansible-test puts pip into each virtual environment it makes with get-pip.py, downloaded from
# ci-files.testing.ansible.com and cached in ~/.ansible/test/cache. Where that host cannot be
# reached (this lab's network reaches PyPI only), the cache gets scripts/get-pip-offline.py
# instead, which installs the same pip from the interpreter's ensurepip and PyPI.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
version=$(python3 - <<'PY'
import pathlib, re, ansible_test
source = (pathlib.Path(ansible_test.__file__).parent / "_internal/python_requirements.py").read_text()
print(re.search(r"pip='([0-9.]+)'", source).group(1))
PY
)
cache=~/.ansible/test/cache/get_pip_${version//./_}.py
[ -f "$cache" ] && exit 0
mkdir -p "$(dirname "$cache")"
if curl -fsS --max-time 10 -o "$cache.download" "https://ci-files.testing.ansible.com/ansible-test/get-pip-$version.py" 2>/dev/null; then
  mv "$cache.download" "$cache"
else
  rm -f "$cache.download"
  cp "$here/get-pip-offline.py" "$cache"
  echo "ci-files.testing.ansible.com unreachable: ansible-test gets pip $version through $here/get-pip-offline.py"
fi

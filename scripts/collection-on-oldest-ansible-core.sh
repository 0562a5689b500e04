#!/usr/bin/env bash
# The collection's sanity and unit tests on the lowest ansible-core its meta/runtime.yml declares
# (the highest, the one in .venv, runs in `make collection`), so the declared range is the tested
# one. That ansible-core lives in a virtual environment of its own (.build/ansible-core-X.Y), and
# the tests run on a copy of the collection's tracked files, so this can run beside `make
# collection` without sharing its tests/output.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
collection=$repo/collections/ansible_collections/pico/cloud
lowest=$(sed -n 's/^requires_ansible: *"*>= *\([0-9][0-9]*\.[0-9][0-9]*\)\..*/\1/p' "$collection/meta/runtime.yml")
[ -n "$lowest" ] || { echo "meta/runtime.yml: requires_ansible has no lower bound of the form \">=X.Y.Z\"" >&2; exit 2; }

python=$(command -v python3)  # the project's (pytest, for the skip policy), before PATH changes
venv=$repo/.build/ansible-core-$lowest
if ! "$venv/bin/ansible-test" --version 2>/dev/null | grep -q "^ansible-test version $lowest\."; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "ansible-core==$lowest.*"
fi
export PATH=$venv/bin:$PATH
bash "$repo/scripts/seed-ansible-test-pip.sh"

copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT
target=$copy/ansible_collections/pico/cloud
mkdir -p "$target"
(cd "$collection" && git ls-files -z | tar --null --no-recursion -T - -cf -) | tar -xf - -C "$target"
# ansible-test lists a collection's files through git: a repository of its own for the copy.
printf 'tests/output/\n' >"$target/.gitignore"
git -C "$target" init --quiet
git -C "$target" add --all
git -C "$target" -c user.name=pico -c user.email=pico@localhost commit --quiet -m copy

cd "$target"
echo "ansible-core $(ansible --version | sed -n '1s/.*core \([0-9.]*\).*/\1/p'): sanity and units"
ansible-test sanity --venv --python 3.11 --requirements --color no
ansible-test units --venv --python 3.11 --requirements --color no
cd "$repo"
"$python" -m tests.skip_policy "$target"/tests/output/junit/python3.11-*-units.xml

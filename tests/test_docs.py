"""The documentation works as written: the README's quick start runs, and
every relative link of the README and docs/ names a file that exists."""

import contextlib
import io
import os
import re

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ['README.md'] + [os.path.join('docs', f)
                        for f in sorted(os.listdir(os.path.join(ROOT, 'docs')))
                        if f.endswith('.md')]


def _read(path):
  with open(os.path.join(ROOT, path)) as fh:
    return fh.read()


def test_readme_quick_start_runs_as_written():
  section = _read('README.md').split('## Library quick start', 1)[1]
  code = re.search(r'```python\n(.*?)```', section, re.S).group(1)
  out = io.StringIO()
  namespace = {}
  with contextlib.redirect_stdout(out):
    exec(compile(code, 'README quick start', 'exec'), namespace)  # pylint: disable=exec-used
  result = namespace['result']
  assert result.accuracy.shape == (3, 3)
  assert 0 <= result.average_accuracy <= 1
  assert np.isclose(result.average_accuracy, result.accuracy[-1].mean())
  assert str(round(result.average_accuracy, 3))[:4] in out.getvalue()


def test_readme_is_short_and_links_resolve():
  assert len(_read('README.md').splitlines()) <= 200
  for doc in DOCS:
    base = os.path.dirname(os.path.join(ROOT, doc))
    for target in re.findall(r'\]\(([^)#]+)(?:#[^)]*)?\)', _read(doc)):
      if '://' in target:
        continue
      assert os.path.exists(os.path.join(base, target)), (doc, target)


def test_the_records_manifest_is_up_to_date():
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location(
      'manifest', os.path.join(ROOT, 'reported', 'manifest.py'))
  manifest = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(manifest)
  assert _read('reported/MANIFEST.md') == manifest.text(), (
      'run python reported/manifest.py')

"""Files written whole or not at all: to a temporary name in the same
directory, then renamed over the target (a rename is atomic on POSIX)."""

import json
import os


def write_text(path: str, text: str) -> None:
  """Writes `text` to `path` atomically."""
  tmp = f'{path}.tmp.{os.getpid()}'
  with open(tmp, 'w') as fh:
    fh.write(text)
  os.replace(tmp, path)


def write_json(path: str, data) -> None:
  """Writes `data` as indented, key-sorted JSON to `path` atomically."""
  write_text(path, json.dumps(data, indent=2, sort_keys=True) + '\n')

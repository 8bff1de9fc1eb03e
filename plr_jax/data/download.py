"""The official dataset files: downloaded, verified, extracted atomically.

`download('cifar10', data_dir)` fetches what `datasets.load` reads from
`data_dir`: CIFAR-10's and CIFAR-100's python archives (extracted to
`cifar-10-batches-py/` and `cifar-100-python/`) and Fashion-MNIST's four IDX
files (into `fashion-mnist/`). Each file's MD5 is the one its publisher
gives. A download goes to `<file>.part` first and resumes from there (HTTP
Range) when interrupted; a file whose checksum differs is deleted and
reported in one line; an archive is extracted into a temporary directory
beside its target (members outside it refused) and renamed into place, so a
dataset directory is either complete or absent.
"""

import dataclasses
import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request


@dataclasses.dataclass(frozen=True)
class Source:
  """One published file: where it is, its MD5, and where it goes.

  Attributes:
    url: the file's address.
    md5: its published checksum.
    target: for an archive, the directory it holds (extracted into
      `data_dir`); otherwise the file's path relative to `data_dir`.
    archive: a .tar.gz to extract.
  """
  url: str
  md5: str
  target: str
  archive: bool = False


_FASHION = 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/'
SOURCES = {
    'cifar10': (Source('https://www.cs.toronto.edu/~kriz/'
                       'cifar-10-python.tar.gz',
                       'c58f30108f718f92721af3b95e74349a',
                       'cifar-10-batches-py', archive=True),),
    'cifar100': (Source('https://www.cs.toronto.edu/~kriz/'
                        'cifar-100-python.tar.gz',
                        'eb9058c3a382ffc7106e4002c42a8d85',
                        'cifar-100-python', archive=True),),
    'fashion_mnist': tuple(
        Source(_FASHION + name, md5, f'fashion-mnist/{name}')
        for name, md5 in (
            ('train-images-idx3-ubyte.gz', '8d4fb7e6c68d591d4c3dfef9ec88bf0d'),
            ('train-labels-idx1-ubyte.gz', '25c81989df183df01b3e8a0aad5dffbe'),
            ('t10k-images-idx3-ubyte.gz', 'bef4ecab320f06d8554ea6380940ec79'),
            ('t10k-labels-idx1-ubyte.gz', 'bb300cfdad3c16e7a12a480ee83cd310'))),
}


class DownloadError(ValueError):
  """A download that failed, was cut short or does not match its checksum."""


def _md5(path: str) -> str:
  digest = hashlib.md5()
  with open(path, 'rb') as fh:
    for block in iter(lambda: fh.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def _fetch(url: str, part: str, timeout_s: float) -> None:
  """Appends to `part` what it lacks of `url` (HTTP Range when it exists)."""
  have = os.path.getsize(part) if os.path.exists(part) else 0
  request = urllib.request.Request(url)
  if have:
    request.add_header('Range', f'bytes={have}-')
  try:
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
      if have and response.status != 206:  # the server ignored the range
        have = 0
      expected = response.headers.get('Content-Length')
      got = 0
      with open(part, 'ab' if have else 'wb') as fh:
        for block in iter(lambda: response.read(1 << 20), b''):
          fh.write(block)
          got += len(block)
      if expected is not None and got < int(expected):
        raise DownloadError(f'{url}: the connection ended after {have + got} '
                            'bytes; rerun to resume')
  except DownloadError:
    raise
  except (urllib.error.URLError, OSError, ValueError) as e:
    reason = getattr(e, 'reason', None) or e
    size = os.path.getsize(part) if os.path.exists(part) else 0
    raise DownloadError(f'{url}: {reason} (after {size} bytes; rerun to '
                        'resume)') from None


def _extract(archive: str, data_dir: str, target: str) -> None:
  """Extracts `archive`, which must hold `target/...` only, into
  `data_dir/target` through a temporary directory."""
  scratch = tempfile.mkdtemp(prefix='.extract-', dir=data_dir)
  try:
    with tarfile.open(archive, 'r:gz') as tar:
      for member in tar.getmembers():
        name = os.path.normpath(member.name)
        if (name.startswith(('/', '..')) or not (member.isfile()
                                                 or member.isdir())
            or name.split(os.sep)[0] != target):
          raise DownloadError(f'{archive}: unexpected member {member.name!r}'
                              f' (only files under {target}/ are accepted)')
      tar.extractall(scratch, filter='data')
    os.replace(os.path.join(scratch, target), os.path.join(data_dir, target))
  except (tarfile.TarError, OSError, EOFError) as e:
    raise DownloadError(f'{archive}: cannot be extracted: {e}') from None
  finally:
    shutil.rmtree(scratch, ignore_errors=True)


def download(name: str, data_dir: str, sources=None,
             timeout_s: float = 60.0, log=print) -> list[str]:
  """Fetches dataset `name` into `data_dir` unless it is there; returns
  the paths written.

  Args:
    name: a key of `SOURCES`.
    data_dir: where `datasets.load` will look.
    sources: the files (default `SOURCES[name]`; tests pass their own).
    timeout_s: per network operation.
    log: progress lines.

  Raises:
    DownloadError: one line: the network failed (the partial file is kept
      for a resume), or a checksum differs (the file is deleted).
  """
  if name not in SOURCES and sources is None:
    raise DownloadError(f'no download for {name!r}; known: '
                        f'{", ".join(SOURCES)}')
  os.makedirs(data_dir, exist_ok=True)
  written = []
  for source in sources or SOURCES[name]:
    final = os.path.join(data_dir, source.target)
    if os.path.exists(final):
      continue
    part = os.path.join(data_dir, os.path.basename(source.url) + '.part')
    log(f'downloading {source.url}')
    _fetch(source.url, part, timeout_s)
    digest = _md5(part)
    if digest != source.md5:
      os.remove(part)
      raise DownloadError(f'{source.url}: checksum {digest}, expected '
                          f'{source.md5}; the file was deleted')
    if source.archive:
      _extract(part, data_dir, source.target)
      os.remove(part)
    else:
      os.makedirs(os.path.dirname(final), exist_ok=True)
      os.replace(part, final)
    written.append(final)
  return written

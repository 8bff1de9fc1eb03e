"""Dataset downloads against an HTTP server on 127.0.0.1 (never the
internet): good, corrupted and cut-short archives, and a resume."""

import hashlib
import http.server
import io
import os
import tarfile
import threading

import numpy as np
import pytest

from plr_jax.data import datasets
from plr_jax.data import download
from tests import fake_data


class _Handler(http.server.BaseHTTPRequestHandler):
  files = {}  # path -> bytes
  cut_after = None  # bytes sent before the connection drops, or None
  ranges = []  # the Range headers seen

  def do_GET(self):  # pylint: disable=invalid-name
    data = self.files.get(self.path)
    if data is None:
      self.send_error(404)
      return
    start = 0
    header = self.headers.get('Range')
    type(self).ranges.append(header)
    if header:
      start = int(header.split('=')[1].split('-')[0])
      self.send_response(206)
      self.send_header('Content-Range',
                       f'bytes {start}-{len(data) - 1}/{len(data)}')
    else:
      self.send_response(200)
    body = data[start:]
    self.send_header('Content-Length', str(len(body)))
    self.end_headers()
    if self.cut_after is not None:
      body = body[:self.cut_after]
    self.wfile.write(body)

  def log_message(self, *args):
    del args


@pytest.fixture
def server():
  httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  _Handler.files, _Handler.cut_after, _Handler.ranges = {}, None, []
  yield f'http://127.0.0.1:{httpd.server_address[1]}'
  httpd.shutdown()
  httpd.server_close()


def _cifar10_archive(tmp_path) -> bytes:
  root = tmp_path / 'src'
  fake_data.write_cifar10(root, per_class_train=3, per_class_test=1)
  out = io.BytesIO()
  with tarfile.open(fileobj=out, mode='w:gz') as tar:
    tar.add(root / 'cifar-10-batches-py', arcname='cifar-10-batches-py')
  return out.getvalue()


def _source(server, data, md5=None):
  _Handler.files['/cifar-10-python.tar.gz'] = data
  return (download.Source(f'{server}/cifar-10-python.tar.gz',
                          md5 or hashlib.md5(data).hexdigest(),
                          'cifar-10-batches-py', archive=True),)


def test_a_good_archive_is_verified_and_extracted(server, tmp_path):
  sources = _source(server, _cifar10_archive(tmp_path))
  data_dir = str(tmp_path / 'data')
  written = download.download('cifar10', data_dir, sources, log=lambda _: 0)
  assert written == [os.path.join(data_dir, 'cifar-10-batches-py')]
  loaded = datasets.load('cifar10', data_dir)
  assert loaded.train_images.shape[0] == 50  # 5 batches of 10
  assert sorted(os.listdir(data_dir)) == ['cifar-10-batches-py']
  # Present: nothing is fetched again.
  assert download.download('cifar10', data_dir, sources) == []


def test_a_corrupted_archive_is_one_line_and_leaves_nothing(server, tmp_path):
  good = _cifar10_archive(tmp_path)
  sources = _source(server, good[:-10] + b'0123456789',
                    md5=hashlib.md5(good).hexdigest())
  data_dir = str(tmp_path / 'data')
  with pytest.raises(download.DownloadError,
                     match=r'checksum [0-9a-f]{32}, expected .* deleted'):
    download.download('cifar10', data_dir, sources, log=lambda _: 0)
  assert os.listdir(data_dir) == []


def test_a_cut_download_resumes_where_it_stopped(server, tmp_path):
  good = _cifar10_archive(tmp_path)
  sources = _source(server, good)
  data_dir = str(tmp_path / 'data')
  _Handler.cut_after = len(good) // 3
  with pytest.raises(download.DownloadError, match='rerun to resume'):
    download.download('cifar10', data_dir, sources, log=lambda _: 0)
  part = os.path.join(data_dir, 'cifar-10-python.tar.gz.part')
  assert os.path.getsize(part) == len(good) // 3
  assert not os.path.exists(os.path.join(data_dir, 'cifar-10-batches-py'))
  _Handler.cut_after = None
  download.download('cifar10', data_dir, sources, log=lambda _: 0)
  assert _Handler.ranges == [None, f'bytes={len(good) // 3}-']
  assert sorted(os.listdir(data_dir)) == ['cifar-10-batches-py']
  assert datasets.load('cifar10', data_dir).test_images.shape[0] == 10


def test_an_archive_reaching_outside_its_directory_is_refused(server,
                                                              tmp_path):
  out = io.BytesIO()
  with tarfile.open(fileobj=out, mode='w:gz') as tar:
    info = tarfile.TarInfo('../evil.txt')
    info.size = 4
    tar.addfile(info, io.BytesIO(b'evil'))
  sources = _source(server, out.getvalue())
  data_dir = str(tmp_path / 'data')
  with pytest.raises(download.DownloadError, match='unexpected member'):
    download.download('cifar10', data_dir, sources, log=lambda _: 0)
  assert not os.path.exists(tmp_path / 'evil.txt')
  assert not os.path.exists(os.path.join(data_dir, 'cifar-10-batches-py'))


def test_plain_files_and_an_unreachable_server(server, tmp_path):
  fake_data.write_fashion_mnist(tmp_path / 'src', per_class_train=2,
                                per_class_test=1)
  sources = []
  for name in ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz',
               't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'):
    data = (tmp_path / 'src' / name).read_bytes()
    _Handler.files[f'/{name}'] = data
    sources.append(download.Source(f'{server}/{name}',
                                   hashlib.md5(data).hexdigest(),
                                   f'fashion-mnist/{name}'))
  data_dir = str(tmp_path / 'data')
  download.download('fashion_mnist', data_dir, sources, log=lambda _: 0)
  loaded = datasets.load('fashion_mnist', data_dir)
  assert loaded.train_images.shape[1:] == (28, 28, 1)
  assert np.array_equal(np.unique(loaded.train_labels), np.arange(10))
  missing = (download.Source(f'{server}/nothing.gz', '0' * 32,
                             'fashion-mnist/nothing.gz'),)
  with pytest.raises(download.DownloadError, match='Not Found'):
    download.download('fashion_mnist', data_dir, missing, log=lambda _: 0)


def test_the_published_checksums_are_listed_for_every_dataset():
  assert set(download.SOURCES) == {'cifar10', 'cifar100', 'fashion_mnist'}
  for sources in download.SOURCES.values():
    for source in sources:
      assert len(source.md5) == 32 and source.url.startswith('http')

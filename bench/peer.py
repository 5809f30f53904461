"""The Python peers of `npm run bench` (bench/run.js): PyTorch on the same
LibTorch and oneDNN, plus PIL + torchvision for the end-to-end pipeline.
A line-oriented server so both sides are timed alternately in one run.

stdin, one JSON object a line; stdout, one JSON reply a line:
  {"cmd": "hello"}                                   -> versions, threads, the BLAS kernel OpenBLAS chose
  {"cmd": "gemm"}                                    -> fp32 / bf16 GEMM GFLOP/s, 4096^3: torch.mm (OpenBLAS for fp32)
                                                        and oneDNN's inner product (the peak the hardware reaches)
  {"cmd": "peak", "dtype": "fp32", "reps": 2}        -> {"gflops": g}: the faster GEMM (oneDNN, torch.mm) again (between
                                                        timed calls, so the peak is taken under the same load)
  {"cmd": "prepare", "depth": 16, "dir": D}          -> writes D/vgg16.pth (mmcls layout) and D/vgg16.onnx
  {"cmd": "logits", "depth": 16, "input": F, "shape": [...], "out": O}  -> eager fp32 logits to O
  {"cmd": "time", "depth": 16, "input": F, "shape": [...], "path": P, "reps": 1}
       P: eager | channels_last | ofi (torch.jit.optimize_for_inference) |
          autocast_bf16 | autocast_bf16_cl | bf16_cl (the model cast to bf16, channels_last)
       -> {"seconds": [...]}
  {"cmd": "e2e", "depth": 16, "files": [...], "batch": 8} -> seconds and top-5 per file (PIL + torchvision.transforms)
  {"cmd": "train", "size": 32, "batch": 32, "steps": 5}   -> VGG-11-BN SGD steps: seconds each, CPU user/sys, page faults
  {"cmd": "train_step", "size": 64, "batch": 32, "precision": "bf16"} -> one SGD step of a model kept between calls
       (precision fp32, or bf16: torch.autocast around forward and loss) -> {"seconds": s}
  {"cmd": "quit"}

usage: peer.py THREADS
"""
import ctypes
import json
import os
import resource
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures'))
from mmcls_vgg import MmclsVGG  # noqa: E402

torch.set_num_threads(int(sys.argv[1]))
models, variants = {}, {}


class Logits(nn.Module):
    """The mmcls-style VGG returning its logits alone (what export and timing want)."""

    def __init__(self, depth):
        super().__init__()
        m = MmclsVGG(depth, num_classes=1000)
        self.features, self.classifier = m.features, m.classifier  # mmcls key names, scriptable

    def forward(self, x):
        f = self.features(x)
        return self.classifier(f.reshape(f.shape[0], -1))


def model(depth):
    if depth not in models:
        torch.manual_seed(depth)
        m = Logits(depth).eval()
        with torch.no_grad():  # weights of a trained net's scale, so logits are not all ~0
            for p in m.parameters():
                if p.dim() > 1:
                    nn.init.kaiming_normal_(p, nonlinearity='relu')
        models[depth] = m
    return models[depth]


def variant(depth, path):
    key = (depth, path)
    if key in variants:
        return variants[key]
    base = model(depth)
    if path == 'eager':
        f = base
    elif path == 'channels_last':
        m = _copy(depth).to(memory_format=torch.channels_last)
        f = lambda x: m(x.contiguous(memory_format=torch.channels_last))  # noqa: E731
    elif path == 'ofi':  # TorchScript frozen, then oneDNN-prepacked convolutions
        f = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(_copy(depth))))
    elif path == 'autocast_bf16':
        def f(x, m=base):
            with torch.autocast('cpu', dtype=torch.bfloat16):
                return m(x)
    elif path == 'autocast_bf16_cl':
        m = _copy(depth).to(memory_format=torch.channels_last)

        def f(x, m=m):
            with torch.autocast('cpu', dtype=torch.bfloat16):
                return m(x.contiguous(memory_format=torch.channels_last))
    elif path == 'bf16_cl':
        m = _copy(depth).to(torch.bfloat16).to(memory_format=torch.channels_last)
        f = lambda x: m(x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last))  # noqa: E731
    else:
        raise ValueError(path)
    variants[key] = f
    return f


def _copy(depth):
    """A second model with the same weights (conversions must not touch the eager one)."""
    m = Logits(depth).eval()
    m.load_state_dict(model(depth).state_dict())
    return m


def read_input(req):
    return torch.from_file(req['input'], size=int(torch.tensor(req['shape']).prod()), dtype=torch.float32).reshape(req['shape'])


def reply(obj):
    sys.stdout.write(json.dumps(obj) + '\n')
    sys.stdout.flush()


def _best_gflops(f, n, reps=5):
    """Best of `reps` (a peak: the least disturbed run), as GFLOP/s of an n^3 GEMM."""
    f()
    best = 1e9
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


GEMM_N = 4096
DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16}
onednn_gemms = {}


def onednn_gflops(name, reps):
    """oneDNN's inner product (torch.utils.mkldnn's Linear on an mkldnn tensor), n^3: what the
    hardware reaches with oneDNN's own kernels, which ours run on too. Kept for later calls."""
    from torch.utils import mkldnn
    n = GEMM_N
    if name not in onednn_gemms:
        linear = mkldnn.to_mkldnn(nn.Linear(n, n, bias=False).eval(), DTYPES[name])
        onednn_gemms[name] = (linear, torch.randn(n, n).to(DTYPES[name]).to_mkldnn())
    linear, x = onednn_gemms[name]
    with torch.no_grad():
        return _best_gflops(lambda: linear(x), n, reps)


def mm_gflops(name, reps):
    """torch.mm, n^3 (OpenBLAS's sgemm for fp32 once OPENBLAS_CORETYPE no longer holds it to Haswell)."""
    n = GEMM_N
    a, b = torch.randn(n, n).to(DTYPES[name]), torch.randn(n, n).to(DTYPES[name])
    return _best_gflops(lambda: torch.mm(a, b), n, reps)


def peak(name, reps):
    """The faster of the two GEMMs now: the peak is what any kernel reaches on this CPU, not one library's."""
    return max(onednn_gflops(name, reps), mm_gflops(name, reps))


def gemm():
    """torch.mm (OpenBLAS's sgemm for fp32) and oneDNN's inner product, both dtypes."""
    out, n = {'mm': {}, 'onednn': {}}, GEMM_N
    for name, dtype in DTYPES.items():
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        out['mm'][name] = _best_gflops(lambda: torch.mm(a, b), n)
        out['onednn'][name] = onednn_gflops(name, 5)
    return out


def blas():
    """Which OpenBLAS kernel runs (OPENBLAS_CORETYPE overrides its CPU detection) and torch's BLAS build setting."""
    found = {'corename': None, 'config': None}
    with open('/proc/self/maps') as maps:
        # libopenblas* first: libblas.so.3 may be OpenBLAS behind Debian's alternatives, or the reference BLAS.
        libs = sorted({line.split()[-1] for line in maps if 'openblas' in line and '.so' in line},
                      key=lambda lib: 'libopenblas' not in os.path.basename(lib))
    for lib in libs:
        try:
            handle = ctypes.CDLL(lib)
            corename, config = handle.openblas_get_corename, handle.openblas_get_config
        except (OSError, AttributeError):
            continue
        corename.restype = config.restype = ctypes.c_char_p
        found = {'library': lib, 'corename': corename().decode(), 'config': config().decode()}
        break
    info = next((w for w in torch.__config__.show().replace(',', ' ').split() if w.startswith('BLAS_INFO=')), None)
    found['torch'] = info.split('=', 1)[1] if info else None
    return found


def e2e(req):
    from PIL import Image
    import torchvision.transforms as T
    m = model(req['depth'])
    tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                    T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    files, batch, top5 = req['files'], req['batch'], []
    t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(files), batch):
            x = torch.stack([tf(Image.open(f).convert('RGB')) for f in files[i:i + batch]])
            top5 += m(x).softmax(1).topk(5).indices.tolist()
    return {'seconds': time.perf_counter() - t0, 'top5': top5}


def trainer(size, batch):
    """torchvision's VGG-11-BN (the same layers as ours, with the adaptive 7x7 pool small inputs need),
    SGD with momentum, one random batch: a step function taking the precision."""
    import torchvision
    torch.manual_seed(0)
    m = torchvision.models.vgg11_bn(num_classes=10)
    m.train()
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 10, (batch,))
    loss_fn = nn.CrossEntropyLoss()

    def step(precision='fp32'):
        opt.zero_grad(set_to_none=True)
        # bf16: PyTorch's recipe, autocast around forward and loss only; backward and the step outside.
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=precision == 'bf16'):
            loss = loss_fn(m(x), y)
        loss.backward()
        opt.step()
    return step


def train(req):
    step = trainer(req['size'], req['batch'])
    step()
    r0, seconds = resource.getrusage(resource.RUSAGE_SELF), []
    for _ in range(req['steps']):
        t0 = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - t0)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return {'seconds': seconds, 'user': r1.ru_utime - r0.ru_utime, 'sys': r1.ru_stime - r0.ru_stime,
            'faults': r1.ru_minflt - r0.ru_minflt}


trainers = {}


def train_step(req):
    """One step of a model kept between calls, so the caller can interleave precisions rep by rep."""
    key = (req['size'], req['batch'])
    if key not in trainers:
        trainers[key] = trainer(*key)
    t0 = time.perf_counter()
    trainers[key](req['precision'])
    return {'seconds': time.perf_counter() - t0}


for line in sys.stdin:
    req = json.loads(line)
    cmd = req['cmd']
    if cmd == 'quit':
        break
    if cmd == 'hello':
        cfg = torch.__config__.show()
        onednn = next((w for w in cfg.split() if w.startswith('v2.') or w.startswith('v3.')), '?')
        reply({'torch': torch.__version__, 'threads': torch.get_num_threads(), 'onednn': onednn.lstrip('v'),
               'blas': blas()})
    elif cmd == 'gemm':
        reply(gemm())
    elif cmd == 'peak':
        reply({'gflops': peak(req.get('dtype', 'fp32'), req.get('reps', 2))})
    elif cmd == 'prepare':
        d, m = req['dir'], model(req['depth'])
        sd = {'backbone.' + k: v for k, v in m.state_dict().items()}
        torch.save({'state_dict': sd, 'meta': {}}, os.path.join(d, f'vgg{req["depth"]}.pth'))
        torch.onnx.export(m, torch.zeros(1, 3, 224, 224), os.path.join(d, f'vgg{req["depth"]}.onnx'), opset_version=13,
                          input_names=['x'], output_names=['logits'], dynamic_axes={'x': {0: 'n'}, 'logits': {0: 'n'}})
        reply({'ok': True})
    elif cmd == 'logits':
        with torch.inference_mode():
            model(req['depth'])(read_input(req)).numpy().astype('float32').tofile(req['out'])
        reply({'ok': True})
    elif cmd == 'time':
        f, x, seconds = variant(req['depth'], req['path']), read_input(req), []
        with torch.inference_mode():
            for _ in range(req.get('reps', 1)):
                t0 = time.perf_counter()
                f(x)
                seconds.append(time.perf_counter() - t0)
        reply({'seconds': seconds})
    elif cmd == 'e2e':
        reply(e2e(req))
    elif cmd == 'train':
        reply(train(req))
    elif cmd == 'train_step':
        reply(train_step(req))

"""PyTorch's side of the GPU checks (scripts/gpu/checks.js): the same weights,
inputs and steps on the same device, so vgg-native is compared with PyTorch
eager on one GPU in one run.

Usage: torch_ref.py COMMAND DIR [DEVICE]   (prints one JSON line)
  weights    DIR           torchvision VGG weights for the 8 variants (seeded,
                           batch-norm statistics drawn too) as DIR/<arch>.pth,
                           and DIR/input.f32 (config.json: batch, size)
  forward    DIR DEVICE    fp32 logits of every <arch>.pth on DIR/input.f32,
                           TF32 off, as DIR/<arch>.torch.f32
  steps      DIR DEVICE    the fine-tuning loop of config.json (SGD, two
                           groups, label smoothing) on DIR/batch_<k>.f32 and
                           DIR/labels_<k>.i64; losses, and DIR/torch_final.pth
  load       DIR           torch.load(DIR/saved.pth, weights_only=True) and
                           its largest relative difference from torch_final.pth
  throughput DIR DEVICE    img/s of torchvision VGG-16/VGG-11, channels_last,
                           fp32/fp16/bf16, on-device input and host input
"""
import contextlib
import json
import os
import sys
import time

import torch
import torchvision

ARCHS = ['vgg11', 'vgg13', 'vgg16', 'vgg19', 'vgg11_bn', 'vgg13_bn', 'vgg16_bn', 'vgg19_bn']
DTYPES = {'fp16': torch.float16, 'bf16': torch.bfloat16}


def tf32(on):
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def read_f32(path, shape):
    return torch.frombuffer(bytearray(open(path, 'rb').read()), dtype=torch.float32).reshape(shape)


def state_of(path, weights_only=False):
    """A state_dict from a .pth: bare, or vgg-native's {'state_dict': ..., 'meta': ...}."""
    obj = torch.load(path, map_location='cpu', weights_only=weights_only)
    return obj['state_dict'] if isinstance(obj, dict) and 'state_dict' in obj else obj


def load_into(m, state):
    missing, unexpected = m.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith('num_batches_tracked')]
    if missing or unexpected:
        raise RuntimeError('state_dict mismatch: missing %s, unexpected %s' % (missing, unexpected))
    return m


def build(arch, num_classes=1000, dropout=0.5):
    return getattr(torchvision.models, arch)(weights=None, num_classes=num_classes, dropout=dropout)


def weights(d):
    cfg = json.load(open(os.path.join(d, 'config.json')))
    for arch in cfg.get('archs', ARCHS):
        torch.manual_seed(100 + ARCHS.index(arch))
        m = build(arch)
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.data.uniform_(0.5, 1.5)
                mod.bias.data.uniform_(-0.2, 0.2)
        torch.save(m.state_dict(), os.path.join(d, arch + '.pth'))
    torch.manual_seed(7)
    x = torch.randn(cfg['batch'], 3, cfg['size'], cfg['size'])
    open(os.path.join(d, 'input.f32'), 'wb').write(x.numpy().tobytes())
    return {'archs': ARCHS}


def forward(d, device):
    cfg = json.load(open(os.path.join(d, 'config.json')))
    tf32(False)
    x = read_f32(os.path.join(d, 'input.f32'), (cfg['batch'], 3, cfg['size'], cfg['size'])).to(device)
    for arch in cfg.get('archs', ARCHS):
        m = build(arch)
        m.load_state_dict(torch.load(os.path.join(d, arch + '.pth'), map_location='cpu'))
        m = m.to(device).eval()
        with torch.no_grad():
            y = m(x).float().cpu()
        open(os.path.join(d, arch + '.torch.f32'), 'wb').write(y.numpy().tobytes())
    return {'device': str(device), 'torch': torch.__version__}


def steps(d, device):
    cfg = json.load(open(os.path.join(d, 'config.json')))
    tf32(False)
    m = build(cfg['arch'], cfg['numClasses'], dropout=0.0)
    load_into(m, state_of(os.path.join(d, 'initial.pth')))
    m = m.to(device).train()
    head = [p for n, p in m.named_parameters() if n.startswith('classifier.6.')]
    body = [p for n, p in m.named_parameters() if not n.startswith('classifier.6.')]
    opt = torch.optim.SGD(
        [{'params': body, 'lr': cfg['lr']}, {'params': head, 'lr': cfg['headLr']}],
        lr=cfg['lr'], momentum=cfg['momentum'], weight_decay=cfg['weightDecay'])
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=cfg['labelSmoothing'])
    n, s = cfg['batch'], cfg['size']
    losses = []
    for k in range(cfg['steps']):
        x = read_f32(os.path.join(d, 'batch_%d.f32' % k), (n, 3, s, s)).to(device)
        y = torch.frombuffer(bytearray(open(os.path.join(d, 'labels_%d.i64' % k), 'rb').read()), dtype=torch.int64).to(device)
        opt.zero_grad()
        loss = loss_fn(m(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    torch.save({k: v.detach().cpu() for k, v in m.state_dict().items()}, os.path.join(d, 'torch_final.pth'))
    return {'losses': losses}


def load(d):
    state = state_of(os.path.join(d, 'saved.pth'), weights_only=True)
    ref = torch.load(os.path.join(d, 'torch_final.pth'), map_location='cpu')
    # ||ours - torch|| / ||torch|| over all tensors together: a per-tensor maximum is
    # dominated by tensors that barely move (a convolution's bias before batch norm).
    diff, norm, missing = 0.0, 0.0, []
    for k, v in ref.items():
        if k.endswith('num_batches_tracked'):
            continue
        if k not in state:
            missing.append(k)
            continue
        diff += float((state[k].double() - v.double()).pow(2).sum())
        norm += float(v.double().pow(2).sum())
    return {'tensors': len(state), 'missing': missing, 'relL2': (diff / max(norm, 1e-30)) ** 0.5}


def throughput(d, device):
    cfg = json.load(open(os.path.join(d, 'config.json')))
    torch.backends.cudnn.benchmark = True
    rows = []
    for arch in cfg['archs']:
        m = build(arch).to(device).eval().to(memory_format=torch.channels_last)
        for precision in cfg['precisions']:
            for batch in cfg['batches']:
                host = torch.randn(batch, 3, 224, 224).pin_memory()
                dev = host.to(device).contiguous(memory_format=torch.channels_last)

                def run(on_device):
                    cast = torch.autocast('cuda', dtype=DTYPES[precision]) if precision in DTYPES else contextlib.nullcontext()
                    with torch.inference_mode(), cast:
                        if on_device:
                            return m(dev)
                        x = host.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                        return m(x).float().cpu()

                row = {'arch': arch, 'precision': precision, 'batch': batch}
                for key, on_device in (('deviceInput', True), ('hostInput', False)):
                    for _ in range(cfg['warmup']):
                        run(on_device)
                    torch.cuda.synchronize()
                    reps, t0 = 0, time.perf_counter()
                    while reps < cfg['minReps'] or (time.perf_counter() - t0 < cfg['seconds'] and reps < cfg['maxReps']):
                        run(on_device)
                        reps += 1
                    torch.cuda.synchronize()
                    row[key] = batch * reps / (time.perf_counter() - t0)
                rows.append(row)
        del m
        torch.cuda.empty_cache()
    return {'rows': rows, 'torch': torch.__version__, 'gpu': torch.cuda.get_device_name(0)}


def main():
    cmd, d = sys.argv[1], sys.argv[2]
    device = torch.device(sys.argv[3]) if len(sys.argv) > 3 else None
    out = {'weights': lambda: weights(d), 'forward': lambda: forward(d, device), 'steps': lambda: steps(d, device),
           'load': lambda: load(d), 'throughput': lambda: throughput(d, device)}[cmd]()
    print(json.dumps(out))


if __name__ == '__main__':
    main()

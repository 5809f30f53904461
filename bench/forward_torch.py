"""PyTorch side of bench/forward.js: a line-oriented server so the two
frameworks can be timed alternately in one run (fair under a shifting load).

stdin, one JSON object a line:
  {"cmd": "time", "depth": 16, "batch": 8, "reps": 1}   -> {"seconds": [..]}
  {"cmd": "quit"}
Each "time" runs `reps` forwards of the mmcls-style VGG (test/fixtures/mmcls_vgg.py,
1000 classes) on a fixed random [batch,3,224,224] input under torch.inference_mode(),
timing each one. Models are built once per depth and cached.

usage: forward_torch.py THREADS
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures'))
from mmcls_vgg import MmclsVGG  # noqa: E402

torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)
models, inputs = {}, {}


def reply(obj):
    sys.stdout.write(json.dumps(obj) + '\n')
    sys.stdout.flush()


reply({'torch': torch.__version__, 'threads': torch.get_num_threads()})
for line in sys.stdin:
    req = json.loads(line)
    if req['cmd'] == 'quit':
        break
    depth, batch = req['depth'], req['batch']
    if depth not in models:
        models[depth] = MmclsVGG(depth, num_classes=1000).eval()
    if batch not in inputs:
        inputs[batch] = torch.randn(batch, 3, 224, 224)
    seconds = []
    with torch.inference_mode():
        for _ in range(req.get('reps', 1)):
            t0 = time.perf_counter()
            models[depth](inputs[batch])
            seconds.append(time.perf_counter() - t0)
    reply({'seconds': seconds})

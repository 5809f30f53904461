# Seeds for the fuzzer (test/fuzz/): small valid files of every kind the
# package reads, made by the tools that make them in the wild (torch.save,
# onnx, PIL), so mutations start from real structure. Run once; the outputs
# are committed under test/fuzz/corpus/seeds/<target>/.
#   /usr/bin/python3 test/fuzz/make_seeds.py test/fuzz/corpus/seeds
import collections, io, os, sys, zipfile

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
import torch
from PIL import Image

out = sys.argv[1]
for t in ('pth', 'pickle', 'onnx', 'model', 'image'):
    os.makedirs(os.path.join(out, t), exist_ok=True)
torch.manual_seed(0)


def tiny_state(bn):
    s = collections.OrderedDict()
    s['features.0.weight'] = torch.randn(4, 3, 3, 3)
    s['features.0.bias'] = torch.randn(4)
    if bn:
        s['features.1.weight'] = torch.ones(4)
        s['features.1.bias'] = torch.zeros(4)
        s['features.1.running_mean'] = torch.zeros(4)
        s['features.1.running_var'] = torch.ones(4)
        s['features.1.num_batches_tracked'] = torch.tensor(3)
    s['classifier.6.weight'] = torch.randn(2, 4)
    s['classifier.6.bias'] = torch.randn(2).half()
    return s


cases = {
    'torchvision_plain': tiny_state(False),
    'torchvision_bn': tiny_state(True),
    'mmcls': {'meta': {'CLASSES': ['cat', 'dog'], 'epoch': 3}, 'state_dict': collections.OrderedDict(('backbone.' + k, v) for k, v in tiny_state(False).items())},
    'views': {'a': (lambda base: [base[0], base[1:3], base.t()])(torch.arange(12.0).reshape(3, 4))},
}
for name, obj in cases.items():
    torch.save(obj, os.path.join(out, 'pth', name + '.zip.pth'))
    torch.save(obj, os.path.join(out, 'pth', name + '.legacy.pth'), _use_new_zipfile_serialization=False)
    with zipfile.ZipFile(os.path.join(out, 'pth', name + '.zip.pth')) as z:
        pkl = [n for n in z.namelist() if n.endswith('data.pkl')][0]
        with open(os.path.join(out, 'pickle', name + '.pkl'), 'wb') as f:
            f.write(z.read(pkl))


def conv_model(n_conv):
    nodes, inits = [], []
    x = 'input'
    c_in = 3
    for i in range(n_conv):
        w = numpy_helper.from_array(np.random.RandomState(i).randn(4, c_in, 3, 3).astype(np.float32), f'w{i}')
        b = numpy_helper.from_array(np.zeros(4, np.float32), f'b{i}')
        inits += [w, b]
        nodes.append(helper.make_node('Conv', [x, f'w{i}', f'b{i}'], [f'c{i}'], pads=[1, 1, 1, 1], kernel_shape=[3, 3]))
        nodes.append(helper.make_node('Relu', [f'c{i}'], [f'r{i}']))
        x = f'r{i}'
        c_in = 4
    nodes.append(helper.make_node('MaxPool', [x], ['p'], kernel_shape=[2, 2], strides=[2, 2]))
    nodes.append(helper.make_node('Flatten', ['p'], ['f']))
    fw = numpy_helper.from_array(np.ones((2, 4 * 2 * 2), np.float32), 'fw')
    fb = numpy_helper.from_array(np.zeros(2, np.float32), 'fb')
    inits += [fw, fb]
    nodes.append(helper.make_node('Gemm', ['f', 'fw', 'fb'], ['logits'], transB=1))
    g = helper.make_graph(nodes, 'tiny', [helper.make_tensor_value_info('input', TensorProto.FLOAT, [1, 3, 4, 4])],
                          [helper.make_tensor_value_info('logits', TensorProto.FLOAT, [1, 2])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)], producer_name='fuzz-seed')


for n in (1, 2):
    m = conv_model(n)
    data = m.SerializeToString()
    with open(os.path.join(out, 'onnx', f'conv{n}.onnx'), 'wb') as f:
        f.write(data)
    with zipfile.ZipFile(os.path.join(out, 'model', f'conv{n}.model'), 'w') as z:
        z.writestr('model/model.onnx', data)
        z.writestr('model/synset.txt', 'n01 cat\nn02 dog\n')

rng = np.random.RandomState(1)
px = (rng.rand(6, 5, 3) * 255).astype(np.uint8)
for fmt, ext in (('PNG', 'png'), ('JPEG', 'jpg'), ('GIF', 'gif'), ('WEBP', 'webp'), ('TIFF', 'tif'), ('BMP', 'bmp')):
    try:
        Image.fromarray(px).save(os.path.join(out, 'image', 'rgb.' + ext), fmt)
    except Exception as e:  # a PIL without that codec
        print('skip', fmt, e)
Image.fromarray(px[:, :, 0]).save(os.path.join(out, 'image', 'gray.png'))
Image.fromarray(np.dstack([px, px[:, :, :1]])).save(os.path.join(out, 'image', 'rgba.png'))

#!/usr/bin/env python3
"""Writes src/labels/imagenet-classes.json: torchvision's 1000 ImageNet class
names, in class-index order. Run once with a Python that has torchvision
(Debian: /usr/bin/python3); the JSON output is committed so the package
needs no Python at run time."""
import json
import os
import sys

from torchvision.models._meta import _IMAGENET_CATEGORIES

names = list(_IMAGENET_CATEGORIES)
if len(names) != 1000 or not all(isinstance(n, str) and n for n in names):
    sys.exit(f'expected 1000 non-empty class names, got {len(names)}')

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'src', 'labels', 'imagenet-classes.json')
with open(out, 'w', encoding='utf-8') as f:
    json.dump(names, f, ensure_ascii=False, indent=0)
    f.write('\n')
print(f'wrote {len(names)} names to {os.path.normpath(out)}')

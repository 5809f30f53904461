// The 1000 ImageNet-1k class names, index = class id, as torchvision names them
// (torchvision.models._meta._IMAGENET_CATEGORIES). The JSON is generated once by
// scripts/gen-imagenet-labels.py and committed, so no Python is needed at run time.
import classes from './imagenet-classes.json';

/**
 * The 1000 ImageNet-1k class names, index = class id (0 'tench' ... 999
 * 'toilet tissue'), as torchvision names them; the default labels of a model
 * with 1000 classes. Frozen.
 */
export const IMAGENET_CLASSES: readonly string[] = Object.freeze([...(classes as string[])]);

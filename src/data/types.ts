// The dataset shape shared by loading, splitting, validation and the loader.

/** One labelled image: an absolute file path and a class index into `classes`. */
export interface DatasetItem {
  /** Absolute path of the image file. */
  path: string;
  /** Class index, an integer in [0, classes.length). */
  label: number;
}

/** Labelled images with their class names, as {@link loadDataset} makes them and fineTune / evaluate take them. */
export interface Dataset {
  /** The images, in order (a folder's: sorted like torchvision's ImageFolder). */
  items: DatasetItem[];
  /** Class names; `label` indexes this list. */
  classes: string[];
  /** Where the data came from (folder, CSV file, "a list of N items"), for error messages. */
  source?: string;
}

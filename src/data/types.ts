// The dataset shape shared by loading, splitting, validation and the loader.

/** One labelled image: an absolute file path and a class index into `classes`. */
export interface DatasetItem {
  path: string;
  label: number;
}

export interface Dataset {
  items: DatasetItem[];
  /** Class names; `label` indexes this list. */
  classes: string[];
  /** Where the data came from (folder, CSV file, "a list of N items"), for error messages. */
  source?: string;
}

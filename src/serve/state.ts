// What the server's hooks and routes share (its own file, so routes.ts and
// server.ts do not import each other).
import type { Vgg } from '../model';
import type { ServeMetrics } from './metrics';
import type { ResolvedServeOptions } from './options';

/** The model once loaded, whether the server is draining, requests admitted. */
export interface ServeState {
  model: Vgg | undefined;
  closing: boolean;
  inFlight: number;
  readonly options: ResolvedServeOptions;
  readonly metrics: ServeMetrics;
}

/**
 * The raw and curated column descriptions the staging model is generated from. In a module of
 * their own because staging.ts (which builds them) and content-hash.ts (which hashes curated
 * columns, and which staging.ts calls) both need them: in staging.ts they made an import cycle.
 */
import type { CuratedType } from './dialect';

export interface RawColumn {
  name: string;
  /** How the raw reader must declare it: scalars as text, point columns as JSON (a nested object). */
  kind: 'text' | 'json';
}

export interface CuratedColumn {
  name: string;
  type: CuratedType;
  /** The raw column the value comes from (same name). */
  source: string;
  /** Whether a non-null raw value can fail to cast (text columns cannot). */
  castable: boolean;
  /** A point column, kept as its GeoJSON text. */
  point?: boolean;
  /** Computed by staging from the other typed columns (`_content_hash`), not read from raw. */
  computed?: boolean;
}

import type { ChargeHandoff } from '../../../activities/cost-ledger.js';
import type { Db } from '../../../db/database.js';
import type { MediaTools } from '../../../media/tools.js';
import type { Providers } from '../../../providers/index.js';
import type { MediaStorage } from '../../../storage/object-storage.js';

export interface VlogActivityDependencies {
  db: Db;
  mediaStorage: MediaStorage;
  providers: Providers;
  /** ffmpeg and ffprobe, for the thumbnail and the measured duration; null: provider metadata only. */
  mediaTools: MediaTools | null;
  gcsApiEndpoint?: string | undefined;
  /** Where a charge the database does not take in time goes (see ActivityDependencies). */
  chargeHandoff?: ChargeHandoff | undefined;
}

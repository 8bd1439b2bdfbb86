/** `npm run dataset -- add <portal URL | metadata file>` and `npm run dataset -- schema`: see local/dataset-command.ts. */
import { runDatasetCommand } from './dataset-command';

process.exitCode = await runDatasetCommand(process.argv.slice(2));

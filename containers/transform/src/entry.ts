/** Container entry point (bundled to dist/entry.mjs). */
import { main } from './main';

process.exitCode = await main(process.env, undefined, process.argv.slice(2));

/**
 * A process for the journal crash tests: starts a journaled local Firehose endpoint, sends
 * `calls` PutRecordBatch calls one after another and prints `acked <n>` after each 200, then
 * prints `idle` and waits to be killed (its buffer still in memory). With PIPELINE_CRASH_AT it
 * kills itself at that fault point instead. Configuration: JSON in JOURNAL_CHILD.
 */
import path from 'node:path';
import { FirehoseClient, PutRecordBatchCommand } from '@aws-sdk/client-firehose';
import { LocalObjectStore } from '../../runtime/object-store';
import { startFirehoseServer } from '../../local/firehose-server';
import { childRecords, childStream, type JournalChildConfig } from './journal-fixture';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const config = JSON.parse(process.env.JOURNAL_CHILD ?? '{}') as JournalChildConfig;
const server = await startFirehoseServer({
  store: new LocalObjectStore(path.join(config.dir, 'raw')),
  streams: [childStream(config)],
  journal: { dir: path.join(config.dir, 'journal') },
});
const client = new FirehoseClient({ endpoint: server.url, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 });
for (let call = 1; call <= config.calls; call++) {
  const res = await client.send(
    new PutRecordBatchCommand({ DeliveryStreamName: 'crash-raw', Records: childRecords(config, call).map((Data) => ({ Data })) }),
  );
  if (res.FailedPutCount) throw new Error(`call ${call}: ${res.FailedPutCount} records failed`);
  process.stdout.write(`acked ${call}\n`);
}
process.stdout.write('idle\n');
setInterval(() => {}, 60_000);

/** A child for test/local/child-rpc.test.ts: answers `echo` calls, never answers `hang`, exits on `close`. */
process.on('message', (m: { type: string; id?: number; value?: unknown }) => {
  if (m.type === 'echo') process.send!({ id: m.id, value: m.value });
  else if (m.type === 'close') process.exit(0);
});

// `npm run test:scale-out`: the HAProxy scale-out test, outside `npm test` (it needs haproxy installed).
export default { files: ["dist/test/scale-out/**/*.js"], timeout: "120s", workerThreads: false, verbose: true };

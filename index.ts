// The package entry (dist/index.js): everything public comes from src/index.ts.
export * from "./src/index.js";

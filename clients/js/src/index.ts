// @tracemark/client: the typed Node client of a tracemark registry's API (see README.md).
export * from "./client.js";
export * from "./errors.js";
export * from "./trustroot.js";
export type * from "./schema.js";
export { OPERATIONS } from "./schema.js";

// The program's entry (Pulumi.yaml `main`): index.ts, loaded through tsload.js's transpile cache.
"use strict";
require("./tsload").register();
module.exports = require("./index.ts");

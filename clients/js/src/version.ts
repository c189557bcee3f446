/** The SDK's version (checked against package.json by test/unit/package.test.js). */
export const VERSION = '0.1.0';

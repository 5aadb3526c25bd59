// Checks an email's HTML against Can I Email's data with @jsx-email/doiuse-email (installed
// by scripts/test into .cache/npm); prints its JSON result. Usage: node doiuse.cjs FILE CLIENT...
const path = require('path');
const { doIUseEmail } = require(path.resolve(__dirname, '../../.cache/npm/node_modules/@jsx-email/doiuse-email'));
const fs = require('fs');
const [file, ...clients] = process.argv.slice(2);
const result = doIUseEmail(fs.readFileSync(file, 'utf8'), { emailClients: clients });
process.stdout.write(JSON.stringify(result));

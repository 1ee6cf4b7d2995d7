'use strict';
// Order checks shared by several tests.
const PRICES = { 'MUG-BL': 12.5, 'TEA-01': 30, 'NB-A5': 4, 'PEN-BK': 1.5 };

function parse(output) {
  return JSON.parse(output);
}

function expectedTotal(items) {
  let total = 0;
  for (const item of items) {
    total += (PRICES[item.sku] ?? 0) * item.qty;
  }
  return Math.round(total * 100) / 100;
}

module.exports = (output, context) => {
  const d = parse(output);
  return d.items.length > 0 && d.items.every((i) => i.sku in PRICES);
};

module.exports.totalMatches = (output, context) => {
  const d = parse(output);
  const want = expectedTotal(d.items);
  if (Math.abs(d.total - want) > 0.01) {
    return { pass: false, score: 0, reason: `total ${d.total} but items cost ${want}` };
  }
  return { pass: true, score: 1, reason: 'total matches the items' };
};

module.exports.fieldScore = function (output, context) {
  const address = parse(output).shipping || {};
  const fields = ['street', 'city', 'postcode', 'country'];
  const present = fields.filter((f) => typeof address[f] === 'string' && address[f].trim() !== '');
  return present.length / fields.length;
};

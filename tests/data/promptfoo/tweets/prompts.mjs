export function thread({ vars }) {
  return [{ role: 'user', content: `Write a 3-tweet thread about ${vars.product}` }];
}

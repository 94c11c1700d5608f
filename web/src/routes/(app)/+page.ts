export async function load({ parent }) {
  // The layout makes sure someone is signed in first.
  await parent();
  return {};
}

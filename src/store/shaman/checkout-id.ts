// Checkout IDs of the Shaman store and where a checkout lives under the checkouts directory.
const CHECKOUT_ID_RE = /^[a-zA-Z0-9_]{2,64}$/;

export function isCheckoutId(id: string): boolean {
  return CHECKOUT_ID_RE.test(id);
}

/** the checkout's place relative to the checkouts directory: `<last 2 of id>/<id>` */
export function checkoutRelPath(id: string): string {
  return `${id.slice(-2)}/${id}`;
}

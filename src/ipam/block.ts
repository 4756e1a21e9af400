/** IPAM errors: every message names the address, block or pool concerned. */
export class IpamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IpamError';
  }
}

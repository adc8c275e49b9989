import { EventEmitter } from 'node:events';
import { normalizeSerial } from '../pki/certificate.js';

/** Serials of certificates that must no longer be accepted, checked on every handshake. */
export class RevocationList {
  private readonly serials = new Set<string>();
  private readonly events = new EventEmitter();

  has(serial: string): boolean {
    return this.serials.has(normalizeSerial(serial));
  }

  add(serial: string): void {
    const normalized = normalizeSerial(serial);
    if (this.serials.has(normalized)) return;
    this.serials.add(normalized);
    this.events.emit('revoked', normalized);
  }

  /** Live connections subscribe so that a revocation drops them, not just future handshakes. */
  onRevoked(listener: (serial: string) => void): () => void {
    this.events.on('revoked', listener);
    return () => this.events.off('revoked', listener);
  }
}

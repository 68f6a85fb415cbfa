package transfer

import "fmt"

// Reason says why a transfer ended without success. It travels in CANCEL
// messages as one byte, so the peer's words never reach the screen: the
// receiving side shows its own text for the code.
type Reason uint8

// Reasons a transfer fails.
const (
	// ReasonDeclined: the receiver said no to the offer.
	ReasonDeclined Reason = iota + 1
	// ReasonCancelled: a person cancelled it.
	ReasonCancelled
	// ReasonSourceUnreadable: the file to send vanished or cannot be read.
	ReasonSourceUnreadable
	// ReasonSourceChanged: the file to send is no longer the one offered.
	ReasonSourceChanged
	// ReasonNoSpace: the receiving disk has not enough room.
	ReasonNoSpace
	// ReasonWriteFailed: the receiving side cannot write the file.
	ReasonWriteFailed
	// ReasonBadChunk: a chunk did not match the hash sent with it.
	ReasonBadChunk
	// ReasonHashMismatch: the whole file did not match the offered hash.
	ReasonHashMismatch
	// ReasonProtocol: the peer sent file data that was not offered or
	// asked for, more than the offered size, or chunks out of order.
	ReasonProtocol
	// ReasonUnknownTransfer: the peer has no record of the transfer.
	ReasonUnknownTransfer
	// ReasonTooManyOffers: the receiver already has too many offers waiting.
	ReasonTooManyOffers
	// ReasonBadOffer: the offer's size, chunk size or name is unusable.
	ReasonBadOffer

	reasonLast = ReasonBadOffer
)

// String is the reason in plain words.
func (r Reason) String() string {
	switch r {
	case ReasonDeclined:
		return "declined"
	case ReasonCancelled:
		return "cancelled"
	case ReasonSourceUnreadable:
		return "the file to send could not be read"
	case ReasonSourceChanged:
		return "the file changed after it was offered"
	case ReasonNoSpace:
		return "not enough free disk space"
	case ReasonWriteFailed:
		return "the received file could not be written"
	case ReasonBadChunk:
		return "a chunk did not match its hash"
	case ReasonHashMismatch:
		return "the received file did not match the offered hash"
	case ReasonProtocol:
		return "the sender sent data that was not offered"
	case ReasonUnknownTransfer:
		return "the other side has no record of this transfer"
	case ReasonTooManyOffers:
		return "too many offers are waiting for an answer"
	case ReasonBadOffer:
		return "the offer was unusable"
	}
	return fmt.Sprintf("stopped for reason %d", uint8(r))
}

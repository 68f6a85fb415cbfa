package ui

import (
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"
)

// hostModel is a minimal root model around a Screen, standing in for the
// engine: it applies setup messages, records intents, and routes the rest
// to the screen.
type hostModel struct {
	s       *Screen
	intents []tea.Msg
}

// setupMsg runs inside the program's loop, so the screen is only ever
// touched by the program goroutine.
type setupMsg func(*Screen)

func (m *hostModel) Init() tea.Cmd { return nil }

func (m *hostModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case setupMsg:
		msg(m.s)
		return m, nil
	case OpenChatIntent, SendIntent, TypingIntent, AcceptIntent, DeclineIntent,
		AddContactIntent, RenameContactIntent, RemoveContactIntent, QuitIntent,
		BlockIntent, UnblockIntent, SendFileIntent, AcceptFileIntent, DeclineFileIntent, CancelFileIntent:
		m.intents = append(m.intents, msg)
		return m, nil
	}
	var cmd tea.Cmd
	m.s, cmd = m.s.Update(msg)
	return m, cmd
}

func (m *hostModel) View() string { return m.s.View() }

// runGolden drives a host through teatest at w×h and compares the final
// screen with testdata/<test name>.golden (regenerate with -update).
func runGolden(t *testing.T, w, h int, setup func(*Screen), keys ...tea.Msg) *hostModel {
	t.Helper()
	s, _ := newTestScreen(w, h)
	tm := teatest.NewTestModel(t, &hostModel{s: s}, teatest.WithInitialTermSize(w, h))
	tm.Send(setupMsg(setup))
	for _, k := range keys {
		tm.Send(k)
	}
	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
	final := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*hostModel)
	view := final.View()
	checkFrame(t, view, w, h)
	golden.RequireEqual(t, []byte(view))
	return final
}

// checkFrame asserts the view fills exactly w×h and carries no escape
// sequence (the test renderer has no colours, so any ESC would be leaked).
func checkFrame(t *testing.T, view string, w, h int) {
	t.Helper()
	lines := strings.Split(view, "\n")
	if len(lines) != h {
		t.Errorf("view has %d lines, want %d", len(lines), h)
	}
	for i, ln := range lines {
		if got := displayWidth(ln); got != w {
			t.Errorf("line %d is %d columns wide, want %d: %q", i, got, w, ln)
		}
	}
	for _, r := range view {
		if r != '\n' && (r < 0x20 || (r >= 0x7f && r <= 0x9f)) {
			t.Errorf("view contains control character %U: %q", r, view)
			break
		}
	}
}

func seedSelf(s *Screen) {
	s.SetSelf(Self{ID: idMe, Name: "carol", Fingerprint: "4417 2290 8812"})
}

func seedStatus(s *Screen) {
	s.SetStatus(StatusView{
		Backend: "firestore", BackendHealthy: true,
		NAT:  "cone NAT: direct connections work with most peers",
		Path: "direct, encrypted 10.0.0.2:4000 ⇄ 198.51.100.12:5000",
	})
}

func allPresences() []ContactView {
	return []ContactView{
		{ID: idAlice, Name: "alice", Presence: PresenceConnected, Unread: 2, LastActivity: baseTime.Add(-5 * time.Minute), Fingerprint: "12345 67890 13579 24680"},
		{ID: idBob, Name: "bob", Presence: PresenceOnline, LastActivity: baseTime.Add(-3 * time.Hour)},
		{ID: idDave, Name: "dave", Presence: PresenceConnecting},
		{ID: idErin, Name: "erin", Presence: PresenceFailed, Detail: "symmetric NAT on their side", LastActivity: baseTime.Add(-50 * time.Hour)},
		{ID: idFrank, Name: "frank", Presence: PresenceOffline, Unread: 120, LastActivity: baseTime.Add(-40 * 24 * time.Hour)},
	}
}

func conversationWithReceipts() []MessageView {
	return []MessageView{
		{Key: "m1", Sender: "alice", Body: "are you around tomorrow?", At: baseTime.Add(-26 * time.Hour), Mark: MarkReceived},
		{Key: "m2", Mine: true, Sender: "carol", Body: "yes, after lunch", At: baseTime.Add(-25 * time.Hour), Mark: MarkDelivered},
		{Key: "m3", Sender: "alice", Body: "good morning!\nsending the notes now", At: baseTime.Add(-15 * time.Minute), Mark: MarkReceived},
		{Key: "m4", Mine: true, Sender: "carol", Body: "thanks, got them. This one is long enough to wrap onto a second line in the chat pane so the indent shows.", At: baseTime.Add(-10 * time.Minute), Mark: MarkDelivered},
		{Key: "m5", Mine: true, Sender: "carol", Body: "reading now", At: baseTime.Add(-9 * time.Minute), Mark: MarkSent},
		{Key: "m6", Mine: true, Sender: "carol", Body: "will call you later", At: baseTime.Add(-1 * time.Minute), Mark: MarkQueued},
		{Key: "m7", Sender: "alice", Body: "written on the train, sent when I had signal", SentAt: baseTime.Add(-50 * time.Minute), At: baseTime, Mark: MarkReceived},
	}
}

func TestGolden(t *testing.T) {
	enter := tea.KeyMsg{Type: tea.KeyEnter}
	ctrlR := tea.KeyMsg{Type: tea.KeyCtrlR}
	openAlice := func(s *Screen) {
		seedSelf(s)
		seedStatus(s)
		s.SetContacts(allPresences())
		s.SetMessages(idAlice, conversationWithReceipts())
		s.SetTyping(idAlice, true)
	}
	cases := []struct {
		name  string
		w, h  int
		setup func(*Screen)
		keys  []tea.Msg
	}{
		{"empty", 100, 30, func(s *Screen) { seedSelf(s) }, nil},
		{"presence", 100, 30, func(s *Screen) {
			seedSelf(s)
			seedStatus(s)
			s.SetContacts(allPresences())
		}, nil},
		{"conversation", 100, 30, openAlice, []tea.Msg{enter}},
		{"offer_known", 100, 30, func(s *Screen) {
			openAlice(s)
			s.ShowOffer(OfferView{ContactID: idBob, Name: "bob", Known: true, Fingerprint: "11111 22222 33333 44444", SessionID: "s1"})
		}, []tea.Msg{enter}},
		{"offer_known_open", 100, 30, func(s *Screen) {
			openAlice(s)
			s.ShowOffer(OfferView{ContactID: idBob, Name: "bob", Known: true, Fingerprint: "11111 22222 33333 44444", SessionID: "s1"})
		}, []tea.Msg{enter, ctrlR}},
		{"offer_unknown", 100, 30, func(s *Screen) {
			seedSelf(s)
			seedStatus(s)
			s.SetContacts(allPresences())
			s.ShowOffer(OfferView{ContactID: idStranger, Fingerprint: "55555 66666 77777 88888", SessionID: "s2"})
		}, []tea.Msg{ctrlR}},
		{"narrow_chat", 60, 16, openAlice, []tea.Msg{enter}},
		{"narrow_contacts", 60, 16, func(s *Screen) {
			openAlice(s)
			s.ShowError("That ID has a typo: check the last characters.")
		}, nil},
		{"narrow_offer_notice", 60, 16, func(s *Screen) {
			openAlice(s)
			s.ShowOffer(OfferView{ContactID: idStranger, Name: "totally-alice", Fingerprint: "55555 66666 77777 88888", SessionID: "s2"})
			s.ShowOffer(OfferView{ContactID: idBob, Name: "bob", Known: true, SessionID: "s3"})
		}, append([]tea.Msg{enter}, typeText("we had a good day and")...)},
		{"narrow_offer_unknown", 60, 16, func(s *Screen) {
			openAlice(s)
			s.ShowOffer(OfferView{ContactID: idStranger, Name: "totally-alice", Fingerprint: "55555 66666 77777 88888", SessionID: "s2"})
			s.ShowOffer(OfferView{ContactID: idBob, Name: "bob", Known: true, SessionID: "s3"})
		}, []tea.Msg{ctrlR}},
		{"details", 80, 24, func(s *Screen) {
			openAlice(s)
			s.SetDetails(DetailsView{
				Backend: "firestore (project p2p-demo)", BackendHealth: "reachable", BackendOK: true,
				NAT: "cone NAT: direct connections work with most peers",
				STUN: []STUNDetails{
					{Server: "stun.example.org:3478", Addr: "198.51.100.1:3478", Answer: "mapped 203.0.113.7:40112 in 23 ms"},
					{Server: "stun.example.net:3478", Answer: "did not resolve"},
				},
				Chat: &ChatDetails{Peer: "alice", State: "connected", Path: "direct", Encrypted: true,
					Local: "10.0.0.2:4000", Remote: "198.51.100.12:5000", RTT: 23400 * time.Microsecond,
					Sent: 12345, Received: 67890, Since: baseTime.Add(-time.Hour)},
			})
		}, []tea.Msg{enter, keyT(tea.KeyCtrlS)}},
		{"status_shortened", 80, 24, func(s *Screen) {
			seedSelf(s)
			seedStatus(s)
			s.SetContacts(allPresences())
		}, nil},
		{"message_near_limit", 80, 24, func(s *Screen) {
			openAlice(s)
		}, []tea.Msg{enter, keyRunes(strings.Repeat("x", maxMessageBytes-1234))}},
		{"blocked", 80, 24, func(s *Screen) {
			seedSelf(s)
			cs := allPresences()
			cs[1].Blocked = true
			s.SetContacts(cs)
			s.SetBlocked([]BlockedView{{ID: idBob, Name: "bob", Since: baseTime.Add(-48 * time.Hour)}, {ID: idStranger, Name: "mallory", Since: baseTime.Add(-72 * time.Hour)}})
		}, []tea.Msg{keyRunes("B")}},
		{"hostile", 100, 30, func(s *Screen) {
			seedSelf(s)
			seedStatus(s)
			s.SetContacts([]ContactView{{ID: idAlice, Name: hostileName, Presence: PresenceConnected}})
			s.SetMessages(idAlice, []MessageView{
				{Key: "h1", Sender: hostileName, Body: hostileBody, At: baseTime, Mark: MarkReceived},
			})
		}, []tea.Msg{enter}},
		{"add_contact", 100, 30, func(s *Screen) {
			seedSelf(s)
			s.SetContacts(allPresences())
		}, append([]tea.Msg{keyRunes("a")}, typeText("dave\t"+idDave[:20])...)},
		{"help", 80, 24, func(s *Screen) { seedSelf(s) }, []tea.Msg{keyRunes("?")}},
		{"info", 80, 24, func(s *Screen) {
			seedSelf(s)
			s.SetContacts(allPresences())
		}, []tea.Msg{keyRunes("i")}},
		{"info_tall", 100, 40, func(s *Screen) {
			seedSelf(s)
			s.SetContacts(allPresences())
		}, []tea.Msg{keyRunes("i")}},
	}
	cases = append(cases, fileGoldenCases(openAlice)...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			runGolden(t, tc.w, tc.h, tc.setup, tc.keys...)
		})
	}
}

// goldenCase is one screen of TestGolden.
type goldenCase = struct {
	name  string
	w, h  int
	setup func(*Screen)
	keys  []tea.Msg
}

// seedTransfers puts transfers with alice (running, offered both ways,
// being read) and bob on the screen, and two that ended in alice's chat.
func seedTransfers(s *Screen) {
	s.SetDownloads("/home/carol/Downloads")
	s.SetTransfer(TransferView{Peer: idAlice, PeerName: "alice", ID: "a1", Outgoing: true, Name: "holiday photos.tar",
		Size: 734 << 20, Done: 312 << 20, Rate: 41.5 * (1 << 20), Phase: TransferActive})
	s.SetTransfer(TransferView{Peer: idAlice, PeerName: "alice", ID: "a2", Name: "minutes.pdf", Size: 2_600_000, Phase: TransferOffered})
	s.SetTransfer(TransferView{Peer: idAlice, PeerName: "alice", ID: "a3", Outgoing: true, Name: "talk.mp4", Phase: TransferHashing})
	s.SetTransfer(TransferView{Peer: idBob, PeerName: "bob", ID: "b1", Name: "thesis-final-final.odt", Size: 5 << 20, Done: 1 << 20, Phase: TransferActive})
	s.EndTransfer(TransferView{Peer: idAlice, ID: "d1", Name: "map.png"}, "map.png (812.0 KiB) from alice saved as /home/carol/Downloads/map.png", true)
	s.EndTransfer(TransferView{Peer: idAlice, ID: "d2", Outgoing: true, Name: "draft.txt"}, "alice declined draft.txt", false)
}

func fileGoldenCases(openAlice func(*Screen)) []goldenCase {
	enter := tea.KeyMsg{Type: tea.KeyEnter}
	ctrlR := tea.KeyMsg{Type: tea.KeyCtrlR}
	offer := func(s *Screen) {
		openAlice(s)
		s.SetDownloads("/home/carol/Downloads")
		s.ShowFileOffer(FileOfferView{Peer: idBob, PeerName: "bob", ID: "f1", Name: "quarterly report.pdf", Size: 2_621_440})
	}
	transfers := func(s *Screen) {
		openAlice(s)
		seedTransfers(s)
	}
	return []goldenCase{
		{"file_offer_notice", 100, 30, offer, []tea.Msg{enter}},
		{"file_offer_open", 100, 30, offer, []tea.Msg{enter, ctrlR}},
		{"file_offer_folder", 100, 30, offer, []tea.Msg{enter, ctrlR, keyRunes("s")}},
		{"transfers_in_chat", 100, 30, transfers, []tea.Msg{enter}},
		{"narrow_transfers", 60, 16, transfers, []tea.Msg{enter}},
		{"send_file", 100, 30, openAlice, append([]tea.Msg{enter, keyT(tea.KeyCtrlO)}, typeText("~/Documents/rep")...)},
		{"transfers_list", 80, 24, transfers, []tea.Msg{keyT(tea.KeyCtrlL), keyRunes("j")}},
	}
}

// hostileName and hostileBody try to retitle the window, write the
// clipboard (OSC 52), move the cursor, clear the screen, and reverse text.
const (
	hostileName = "\x1b]0;pwned\x07mallory\x1b[2J\x1b[H\u202e"
	hostileBody = "hello\x1b[31m red\x1b[0m \x1b]52;c;cm0gLXJmIH4=\x07copied\u009b1;1Hmoved\x1bPdcs\x1b\\ \x07bell\x08\x08back \u202eevil\u202c done"
)

func TestHostileTextIsStripped(t *testing.T) {
	s, _ := newTestScreen(100, 30)
	s.SetContacts([]ContactView{{ID: idAlice, Name: hostileName}})
	s.SetMessages(idAlice, []MessageView{{Key: "h", Sender: hostileName, Body: hostileBody, At: baseTime}})
	s.openChat(idAlice)
	s.ShowError("bad \x1b[2J thing")
	v := s.View()
	checkFrame(t, v, 100, 30)
	for _, bad := range []string{"pwned", "cm0gLXJmIH4", "dcs", "\u202e"} {
		if strings.Contains(v, bad) {
			t.Errorf("view shows %q from a control sequence", bad)
		}
	}
	for _, good := range []string{"mallory", "hello red copiedmoved bellback evil done"} {
		if !strings.Contains(v, good) {
			t.Errorf("view lost the text %q", good)
		}
	}
}

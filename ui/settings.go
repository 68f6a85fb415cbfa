package ui

// maxJoinCodeRunes bounds the join code field (the "g" dialog): a project
// ID (30) and an API key (39) with the frame, and room for an emulator's
// longer keys.
const maxJoinCodeRunes = 200

package authserver

// BcryptRuns is how many bcrypt comparisons of client secrets s has run.
func BcryptRuns(s *Server) int64 { return s.secrets.bcrypts.Load() }

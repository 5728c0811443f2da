# -*- encoding: utf-8 -*-
# stub: rack 2.2.8 ruby lib

Gem::Specification.new do |s|
  s.name = "rack".freeze
  s.version = "2.2.8"
  s.required_rubygems_version = Gem::Requirement.new(">= 0".freeze) if s.respond_to? :required_rubygems_version=
  s.authors = ["Leah Neukirchen".freeze]
  s.licenses = ["MIT".freeze]
  s.summary = "A modular Ruby webserver interface".freeze
end
